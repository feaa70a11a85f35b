//! Request quotas shared by every gateway replica.
//!
//! Each caller has a budget of `limit` requests per `window`, enforced with GCRA (the generic
//! cell rate algorithm) in one Lua script: the whole budget may be spent in a burst, then it
//! refills smoothly (one request every `window / limit`). The script reads Redis's own clock, so
//! replicas with skewed clocks still agree, and keeps one small key per caller that expires as
//! soon as the budget is full again.
//!
//! The caller is the authenticated user (their token is verified here, and the result reused by
//! the handler) — for an API client's token the client, with the quota its token carries —, else
//! the client address: sign-in attempts are throttled per address here and per
//! username by the permission service.
//!
//! Every answer carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until
//! the budget is full) and `RateLimit-Policy` (`<limit>;w=<window>`); a refused request gets 429
//! with `Retry-After`. If Redis cannot be asked, requests pass (logged and counted): losing
//! throttling for a moment is better than losing the API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_errors::{ApiError, Code};
use redis::aio::ConnectionManager;

use super::Security;
use super::auth::AuthUser;
use crate::platform::ClientInfo;
use crate::platform::error::Error;
use crate::settings::RateLimitSettings;

/// KEYS[1]: the caller's key. ARGV: emission interval T and tolerance tau, in microseconds.
/// Returns {allowed (1/0), remaining, reset_us, retry_after_us}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, 0, tat - now, tat - now - tolerance}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.floor((tolerance - (new_tat - now - interval)) / interval)
return {1, remaining, new_tat - now, 0}
"#;

#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    settings: RateLimitSettings,
    timeout: Duration,
    script: redis::Script,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u64,
    /// Until the budget is full again.
    pub reset: Duration,
    /// For a refused request: until one more request fits.
    pub retry_after: Duration,
}

impl RateLimiter {
    pub fn new(redis: &crate::upstream::Redis, settings: RateLimitSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn: redis.conn.clone(),
                prefix: redis.key_prefix.clone(),
                settings,
                timeout: redis.timeout,
                script: redis::Script::new(GCRA),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.settings.enabled && self.inner.settings.window_secs > 0
    }

    /// Spends one request of `caller`'s budget of `limit`; None when Redis could not be asked.
    pub async fn check(&self, caller: &str, limit: u32) -> Option<Quota> {
        let limit = limit.max(1);
        let window_us = self.inner.settings.window_secs.saturating_mul(1_000_000);
        let interval = (window_us / u64::from(limit)).max(1);
        let tolerance = window_us.saturating_sub(interval);
        let key = format!("{}:rl:{caller}", self.inner.prefix);
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.script.key(key);
        invocation.arg(interval).arg(tolerance);
        let call = invocation.invoke_async(&mut conn);
        let result: redis::RedisResult<(i64, i64, i64, i64)> =
            match tokio::time::timeout(self.inner.timeout, call).await {
                Ok(result) => result,
                Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
            };
        match result {
            Ok((allowed, remaining, reset_us, retry_us)) => Some(Quota {
                allowed: allowed == 1,
                limit,
                remaining: remaining.max(0) as u64,
                reset: Duration::from_micros(reset_us.max(0) as u64),
                retry_after: Duration::from_micros(retry_us.max(0) as u64),
            }),
            Err(err) => {
                tracing::warn!(error = %err, "rate limit check failed; letting the request through");
                metrics::counter!("gateway_rate_limit_errors_total").increment(1);
                None
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, quota: &Quota, window_secs: u64) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("ratelimit-limit", quota.limit.to_string());
    set("ratelimit-remaining", quota.remaining.to_string());
    set("ratelimit-reset", ceil_secs(quota.reset).to_string());
    set(
        "ratelimit-policy",
        format!("{};w={window_secs}", quota.limit),
    );
}

/// The middleware: identifies the caller, spends one request, adds the headers.
pub async fn rate_limit(State(state): State<Security>, request: Request, next: Next) -> Response {
    let limiter = &state.rate_limiter;
    if !limiter.enabled() {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // A valid token: the user's budget (the handler reuses this verification). Anything else:
    // the address's, and the handler answers 401 where a token is required.
    let (caller, limit) = match AuthUser::from_request_parts(&mut parts, &state).await {
        // An API client: one budget for all its tokens, its own quota when it has one.
        Ok(AuthUser {
            client: Some(client),
            ..
        }) => (
            format!("c:{}", client.client_id),
            client
                .requests_per_window
                .unwrap_or(limiter.inner.settings.per_user),
        ),
        Ok(user) => (
            format!("u:{}", user.user_id),
            limiter.inner.settings.per_user,
        ),
        Err(_) => {
            let client = ClientInfo::from_request_parts(&mut parts, &state).await;
            let ip = client.map(|c| c.ip).unwrap_or_default();
            (format!("ip:{ip}"), limiter.inner.settings.per_anonymous_ip)
        }
    };
    let request = Request::from_parts(parts, body);
    let Some(quota) = limiter.check(&caller, limit).await else {
        return next.run(request).await;
    };
    let window = limiter.inner.settings.window_secs;
    let mut response = if quota.allowed {
        next.run(request).await
    } else {
        metrics::counter!("gateway_rate_limited_total").increment(1);
        Error::Api(
            ApiError::new(
                Code::RateLimited,
                "too many requests: slow down and retry later",
            )
            .with_retry_after(quota.retry_after.max(Duration::from_secs(1))),
        )
        .into_response()
    };
    set_headers(response.headers_mut(), &quota, window);
    response
}
