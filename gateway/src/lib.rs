//! The CRM's public REST API: an axum gateway that authenticates callers and maps `/api/v1` onto
//! the services' gRPC APIs.
//!
//! The gateway holds no business rules and no database. It checks what only the edge can check —
//! who is calling, whether the JSON has the right shape, whether the client's preconditions
//! (`If-Match`, `Idempotency-Key`) hold — and leaves the meaning of the data to the services,
//! whose field violations it passes on.
//!
//! # Request pipeline
//!
//! Outermost first; each step sees the request before the next one and the response after it:
//!
//! 1. [`platform::observability::sanitize_request_id`]: drops a client `x-request-id` that is too long or
//!    not a plain token (it ends up in every log line);
//! 2. `SetRequestIdLayer`: a UUID `x-request-id` unless the client sent one;
//! 3. `PropagateRequestIdLayer`: the same id on the response;
//! 4. [`platform::observability::observe`]: the `http` span (continuing the client's `traceparent`), the
//!    request id for problem bodies and gRPC metadata, `http_requests_total` /
//!    `http_request_duration_seconds` by route template, the access-log line, and a problem
//!    body for any bare error;
//! 5. [`platform::observability::timeout`]: `http.request_timeout_secs` for the whole request (503);
//! 6. `DefaultBodyLimit`: `http.body_limit_bytes`, enforced wherever a body is read (413);
//! 7. [`security::rate_limit::rate_limit`] (on `/api/v1` and the JWKS): the caller's quota, 429 past it;
//! 8. routing (`/api/v1/...`, docs, `/healthz` `/readyz` `/metrics`; unknown path → 404 problem,
//!    wrong method → 405 problem);
//! 9. on POST only, [`security::idempotency::idempotency`]: authenticates, buffers the body and replays or
//!    records the outcome in Redis;
//! 10. the route's guard ([`security::Security::permit`]): authenticates (401), gets the
//!     caller's scopes for the route's resource and action (403 when not granted) and hands the
//!     handler an [`Access`](crm_access::Access);
//! 11. the handler's extractors: [`platform::extract::IdPath`] / [`platform::extract::ApiPath`]
//!     (400 naming the path parameter), [`platform::extract::IfMatch`]
//!     (428 / 400), [`platform::extract::ApiQuery`] / [`platform::extract::ApiJson`] (415 / 400
//!     with field paths);
//! 12. the handler: converts the JSON to the service's proto types and calls it through
//!     [`upstream`] (signed, with the access context, trace context and `x-request-id`); a gRPC
//!     error becomes a problem through `crm_errors::ApiError::from_status`.
//!
//! # Layout
//!
//! - [`app`]: [`Application`] (build, port, run until stopped), the state and the router: the
//!   only module that knows every domain;
//! - [`domains`]: one module per domain ([`domains::customer`], [`domains::identity`]) owning its
//!   JSON types, conversions, handlers, each route's grant and its OpenAPI operations;
//! - [`platform`]: what every domain shares — the [`Error`] type and problem+json, extractors,
//!   responses, exports, the record routes written once ([`platform::records`]), observability
//!   and the OpenAPI conventions;
//! - [`security`]: tokens, principals, authorisation guards, idempotency, rate limits;
//! - [`upstream`]: the signed gRPC channels to the services named in `services`, and Redis;
//! - [`settings`]: typed settings, defaults in `config/base.yaml`.
//!
//! Domains depend on `platform`, `security` and `upstream`, never on each other or on `app`;
//! `platform`, `security` and `upstream` never on a domain.

pub mod app;
pub mod domains;
pub mod platform;
pub mod security;
pub mod settings;
pub mod upstream;

pub use app::Application;
pub use platform::error::Error;
pub use settings::Settings;
