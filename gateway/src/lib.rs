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
//! 1. [`observability::sanitize_request_id`]: drops a client `x-request-id` that is too long or
//!    not a plain token (it ends up in every log line);
//! 2. `SetRequestIdLayer`: a UUID `x-request-id` unless the client sent one;
//! 3. `PropagateRequestIdLayer`: the same id on the response;
//! 4. [`observability::observe`]: the `http` span (continuing the client's `traceparent`), the
//!    request id for problem bodies and gRPC metadata, `http_requests_total` /
//!    `http_request_duration_seconds` by route template, the access-log line, and a problem
//!    body for any bare error;
//! 5. [`observability::timeout`]: `http.request_timeout_secs` for the whole request (503);
//! 6. `DefaultBodyLimit`: `http.body_limit_bytes`, enforced wherever a body is read (413);
//! 7. [`rate_limit::rate_limit`] (on `/api/v1` and the JWKS): the caller's quota, 429 past it;
//! 8. routing (`/api/v1/...`, docs, `/healthz` `/readyz` `/metrics`; unknown path → 404 problem,
//!    wrong method → 405 problem);
//! 9. on POST only, [`idempotency::idempotency`]: authenticates, buffers the body and replays or
//!    records the outcome in Redis;
//! 10. the handler's extractors: [`auth::AuthUser`] (401), [`extract::IdPath`],
//!     [`extract::IfMatch`] (428 / 400), [`extract::ApiQuery`] / [`extract::ApiJson`] (415 / 400
//!     with field paths);
//! 11. the handler: converts ([`convert`]) and calls the service through [`customer`], with
//!     the trace context, `x-crm-user-id` and `x-request-id` in the metadata; a gRPC error
//!     becomes a problem through `crm_errors::ApiError::from_status`.
//!
//! # Layout
//!
//! - [`startup`]: [`Application`] (build, port, run until stopped) and the router;
//! - [`settings`]: typed settings, defaults in `config/base.yaml`;
//! - [`routes`]: handlers, one module per resource (and `auth` for sign-in);
//! - [`customer`], [`permission`]: the gRPC clients of the services;
//! - [`principals`]: whether a token's user is still active (refreshed by permission events);
//! - [`model`]: the API's JSON types; [`convert`]: them ↔ the generated proto types;
//! - [`extract`]: strict JSON / query / path / `If-Match` extractors;
//! - [`auth`]: JWT verification (PEM keys and JWKS) and the [`auth::AuthUser`] extractor;
//! - [`idempotency`]: the `Idempotency-Key` middleware and its Redis store;
//! - [`rate_limit`]: per-user / per-address quotas in Redis (GCRA), 429 and RateLimit headers;
//! - [`observability`]: request span, request id, metrics, timeout, problem fallback;
//! - [`error`]: the one [`Error`] type and its RFC 7807 rendering;
//! - [`openapi`]: the OpenAPI 3.1 document and the docs UI;
//! - [`token`]: subject → user id mapping and development tokens (`crm-token`).

pub mod auth;
pub mod authz;
pub mod convert;
pub mod customer;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod model;
pub mod observability;
pub mod openapi;
pub mod permission;
pub mod principals;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod token;

pub use error::Error;
pub use settings::Settings;
pub use startup::Application;
