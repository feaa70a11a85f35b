//! Single sign-on: the permission service as an OpenID Connect relying party (authorization code
//! flow with PKCE, RFC 7636), per configured provider (`oidc.providers`).
//!
//! 1. [`Oidc::start`]: discovery (`<issuer>/.well-known/openid-configuration`, cached), a fresh
//!    `state`, `nonce` and PKCE verifier stored for ten minutes, and the authorization URL.
//! 2. [`Oidc::callback`]: the `state` is taken (single use, unexpired, same provider), the code
//!    exchanged with the verifier, the ID token verified (signature by the provider's JWKS,
//!    `iss`, `aud`, `exp`, `nonce`), the user found by `(provider, sub)` or created just in time,
//!    the provider's claim rules applied (roles and department given when missing, never taken
//!    away), and a session started as for a password sign-in.
//!
//! Every refusal is the same UNAUTHENTICATED answer to the client; the reason is logged and sent
//! as a `permission.login.failed` event.//!
//! Layout: [`domain`] (PKCE, claim rules, usernames for new SSO users), [`store`] (sign-ins under
//! way, linked identities), [`service`] ([`Oidc`]: discovery, the code exchange, ID-token
//! verification, the user, the session). No `grpc.rs`: `OidcStart` and `OidcCallback` belong to
//! `AuthService`, whose one implementation is [`crate::auth::grpc`].

pub mod domain;
pub mod service;
pub mod store;

pub use service::Oidc;
