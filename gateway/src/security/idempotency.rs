//! `Idempotency-Key` on POST: a retried create returns the first outcome instead of creating a
//! second record.
//!
//! Records live in Redis under `{key_prefix}:idem:{user_id}:{key}`, so every gateway replica
//! sees them and two users cannot collide on the same key. For a request with a key:
//!
//! 1. `SET NX` an in-progress marker (with the request's fingerprint: SHA-256 of method, path
//!    and body) that expires shortly after the request deadline, so a crashed gateway does not
//!    block the key for long;
//! 2. if the key already exists: same fingerprint and done → replay the stored response with
//!    `Idempotency-Replayed: true`; different fingerprint → 422 `idempotency_mismatch`; still in
//!    progress → 409 `conflict` with `Retry-After: 1`;
//! 3. otherwise run the handler *detached* from the connection: once a create started, its
//!    outcome is recorded even if the client hangs up, because that client is exactly the one
//!    who will retry;
//! 4. store 2xx and 4xx outcomes (status, `Content-Type`, `Location`, `ETag`, body) for
//!    `idempotency.ttl_secs`; on 5xx (and 429) delete the marker so a retry runs again.
//!
//! Writes of the outcome and deletes are compare-and-set on the marker (Lua), so a request that
//! lost its marker to expiry cannot overwrite the record of the request that took over.
//!
//! Redis being down is a 503 for requests *with* a key — silently dropping the guarantee would
//! turn a client's safe retry into a duplicate — and changes nothing for requests without one.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use crm_errors::{ApiError, Code, FieldViolation};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::Security;
use super::auth::AuthUser;
use crate::platform::error::Error;
use crate::platform::observability;
use crate::upstream::Redis;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENCY_REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");

/// Response headers a replay must repeat for the client to see the same outcome.
const STORED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// How long past the request deadline an in-progress marker lives.
const MARKER_MARGIN: Duration = Duration::from_secs(30);

/// Replaces the marker with the final record, if the marker is still ours.
const COMPLETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// Deletes the marker, if it is still ours.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// What is stored under a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    InProgress {
        fingerprint: String,
        /// Unique per attempt: makes the marker string ours alone for compare-and-set.
        attempt: String,
    },
    Done {
        fingerprint: String,
        status: u16,
        headers: Vec<(String, String)>,
        /// Base64 of the body bytes.
        body: String,
    },
}

/// The Redis side of idempotency.
#[derive(Clone)]
pub struct IdempotencyStore {
    conn: ConnectionManager,
    prefix: String,
    /// Lifetime of completed records.
    ttl: Duration,
    /// Lifetime of in-progress markers.
    marker_ttl: Duration,
    /// Bound on each Redis command.
    timeout: Duration,
    complete: redis::Script,
    release: redis::Script,
}

impl IdempotencyStore {
    /// Never connects here: the gateway starts without Redis, and requests with a key get 503
    /// until Redis is back.
    pub fn new(redis: &Redis, ttl: Duration, request_timeout: Duration) -> Self {
        Self {
            conn: redis.conn.clone(),
            prefix: redis.key_prefix.clone(),
            ttl,
            marker_ttl: request_timeout + MARKER_MARGIN,
            timeout: redis.timeout,
            complete: redis::Script::new(COMPLETE),
            release: redis::Script::new(RELEASE),
        }
    }

    fn key(&self, user: &AuthUser, key: &str) -> String {
        format!("{}:idem:{}:{key}", self.prefix, user.user_id)
    }

    async fn bounded<T>(
        &self,
        what: &str,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, op = what, "idempotency store failed");
                Err(unavailable())
            }
            Err(_) => {
                tracing::warn!(op = what, "idempotency store timed out");
                Err(unavailable())
            }
        }
    }

    /// Claims `key` with `marker`, or returns what is already there.
    async fn begin(&self, key: &str, marker: &str) -> Result<Option<Record>, Error> {
        let mut conn = self.conn.clone();
        // The key may vanish between SET NX and GET (expiry, a failed attempt releasing it):
        // then claiming it again is right. Bounded, in case it keeps flapping.
        for _ in 0..3 {
            let claimed: Option<String> = self
                .bounded(
                    "claim",
                    redis::cmd("SET")
                        .arg(key)
                        .arg(marker)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(self.marker_ttl))
                        .query_async(&mut conn),
                )
                .await?;
            if claimed.is_some() {
                return Ok(None);
            }
            let existing: Option<String> = self
                .bounded("read", redis::cmd("GET").arg(key).query_async(&mut conn))
                .await?;
            if let Some(existing) = existing {
                let record = serde_json::from_str(&existing).map_err(|e| {
                    Error::internal(anyhow::anyhow!("corrupt idempotency record {key}: {e}"))
                })?;
                return Ok(Some(record));
            }
        }
        Err(Error::IdempotencyInProgress)
    }

    async fn complete(&self, key: &str, marker: &str, record: &Record) -> Result<bool, Error> {
        let value = serde_json::to_string(record).map_err(Error::internal)?;
        let mut conn = self.conn.clone();
        let stored: i64 = self
            .bounded(
                "store",
                self.complete
                    .key(key)
                    .arg(marker)
                    .arg(value)
                    .arg(millis(self.ttl))
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(stored == 1)
    }

    async fn release(&self, key: &str, marker: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .bounded(
                "release",
                self.release.key(key).arg(marker).invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unavailable() -> Error {
    Error::Api(ApiError::unavailable("the idempotency store"))
}

/// Checks an `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub fn parse_key(value: &HeaderValue) -> Result<String, Error> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Error::invalid(vec![FieldViolation::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )]));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// SHA-256 over method, path and body: "the same request" for replay purposes.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// The middleware (see the module docs). Requests without the header pass straight through.
pub async fn idempotency(State(state): State<Security>, request: Request, next: Next) -> Response {
    handle(state, request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(state: Security, request: Request, next: Next) -> Result<Response, Error> {
    let Some(raw_key) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return Ok(next.run(request).await);
    };
    let key = parse_key(raw_key)?;
    let (mut parts, body) = request.into_parts();
    // Keys are per user, so authenticate first; the handler reuses this result.
    let user = AuthUser::from_request_parts(&mut parts, &state).await?;
    let bytes = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|err| {
            if err
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::PayloadTooLarge
            } else {
                Error::bad_request("the request body could not be read")
            }
        })?;
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &bytes);

    let store = state.idempotency.clone();
    let redis_key = store.key(&user, &key);
    let marker = serde_json::to_string(&Record::InProgress {
        fingerprint: fingerprint.clone(),
        attempt: uuid::Uuid::new_v4().to_string(),
    })
    .map_err(Error::internal)?;

    if let Some(existing) = store.begin(&redis_key, &marker).await? {
        return replay(existing, &fingerprint);
    }

    let request = Request::from_parts(parts, Body::from(bytes));
    let work = finish(store, redis_key, marker, fingerprint, next.run(request));
    let work = observability::with_request_id(observability::current_request_id(), work)
        .instrument(tracing::Span::current());
    tokio::spawn(work)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("idempotent request task failed: {e}")))
}

/// Runs the handler and records (or releases) its outcome.
async fn finish(
    store: IdempotencyStore,
    key: String,
    marker: String,
    fingerprint: String,
    handler: impl Future<Output = Response>,
) -> Response {
    let response = handler.await;
    let status = response.status();
    // Worth keeping only if retrying cannot change it: server errors and rate limits can.
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(err) = store.release(&key, &marker).await {
            tracing::warn!(error = %err, "could not release an idempotency key; it expires on its own");
        }
        return response;
    }

    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let _ = store.release(&key, &marker).await;
            return Error::internal(anyhow::anyhow!("buffering a response: {err}")).into_response();
        }
    };
    let headers = STORED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_string(), value.to_string()))
        })
        .collect();
    let record = Record::Done {
        fingerprint,
        status: status.as_u16(),
        headers,
        body: BASE64.encode(&bytes),
    };
    match store.complete(&key, &marker, &record).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("idempotency marker expired before the request finished"),
        // The work is done: answer it. A retry will see the marker until it expires.
        Err(err) => tracing::error!(error = %err, "could not store an idempotent response"),
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer to a request whose key is already taken.
fn replay(existing: Record, fingerprint: &str) -> Result<Response, Error> {
    let mismatch = || {
        Error::Api(ApiError::new(
            Code::IdempotencyMismatch,
            "this Idempotency-Key was already used with a different request",
        ))
    };
    match existing {
        Record::InProgress {
            fingerprint: theirs,
            ..
        } if theirs != fingerprint => Err(mismatch()),
        Record::InProgress { .. } => Err(Error::IdempotencyInProgress),
        Record::Done {
            fingerprint: theirs,
            ..
        } if theirs != fingerprint => Err(mismatch()),
        Record::Done {
            status,
            headers,
            body,
            ..
        } => {
            let status = StatusCode::from_u16(status).map_err(Error::internal)?;
            let body = BASE64.decode(body).map_err(Error::internal)?;
            let mut response = (status, body).into_response();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            response.headers_mut().insert(
                IDEMPOTENCY_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(parse_key(&HeaderValue::from_static("abc-123_XYZ")).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("has space")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/api/v1/accounts", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/api/v1/accounts", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/contacts", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/accounts", b"{ }"));
        assert_ne!(a, fingerprint(&Method::PUT, "/api/v1/accounts", b"{}"));
    }

    #[tokio::test]
    async fn replays_repeat_the_outcome_and_flag_it() {
        let record = Record::Done {
            fingerprint: "f".into(),
            status: 201,
            headers: vec![("location".into(), "/api/v1/accounts/1".into())],
            body: BASE64.encode(b"{\"id\":1}"),
        };
        let response = replay(record.clone(), "f").unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/api/v1/accounts/1");
        assert_eq!(response.headers()[&IDEMPOTENCY_REPLAYED], "true");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"{\"id\":1}");

        let err = replay(record, "other").unwrap_err();
        assert_eq!(err.status_and_code().1, "idempotency_mismatch");
        let pending = Record::InProgress {
            fingerprint: "f".into(),
            attempt: "a".into(),
        };
        assert!(matches!(
            replay(pending.clone(), "f"),
            Err(Error::IdempotencyInProgress)
        ));
        assert_eq!(
            replay(pending, "g").unwrap_err().status_and_code().0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
