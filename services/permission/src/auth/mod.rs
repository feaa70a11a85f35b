//! Sign-in: username and password (throttled per username string), refresh tokens (single use,
//! rotated, reuse revokes the session), logout, API clients' client credentials, and the access
//! tokens all of them end in. Serves `crm.permission.v1.AuthService`.
//!
//! Layout:
//! - [`domain`]: sign-in as values (who asks, what a sign-in returns, why one failed, why a
//!   session ended);
//! - [`throttle`]: the lockout rules, pure functions over one username's counter — a helper of
//!   sign-in only, so it lives here;
//! - [`tokens`]: access-token claims, refresh-token generation and hashing — likewise;
//! - [`store`]: the SQL of throttle counters and refresh tokens;
//! - [`service`]: the use cases ([`Auth`]);
//! - [`grpc`]: the edge, `AuthService` — including the RPCs of single sign-on
//!   ([`crate::oidc`]) and the key set ([`crate::keys`]), which belong to this service.
//!
//! Password hashing ([`crate::password`]) is used by [`crate::users`] as much as here, so it
//! is a module of its own.

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use service::Auth;
