//! API clients: external systems (ERP, OA, e-commerce) that call the API on their own behalf with
//! OAuth 2.0 client credentials.
//!
//! A client is backed by a service user with the same id (username `api.<client_id>`, no
//! password): it holds roles like anyone, so data scopes and field rules apply unchanged, and its
//! status is the user's (disabling the client disables the user, which refuses its tokens at the
//! gateway at once). On top of that, the client's `scopes` (`<resource>:<action>`) name the only
//! resources and actions its tokens may be used for, and `requests_per_window` is its own quota.
//! Both travel in the signed access token (`client_id`, `scope`, `rl`), so the gateway needs no
//! lookup per request; a change takes effect with the next token (tokens live minutes).
//!
//! Secrets are 256 random bits shown once; only their SHA-256 is stored, compared in constant
//! time. An unknown client, a wrong secret and a disabled client fail alike.
//!
//! Layout: [`domain`] (types and their rules, secrets, granted scopes; no I/O), [`store`] (the
//! `api_clients` SQL), [`service`] (administration, [`ApiClients`]), [`grpc`] (the edge,
//! `crm.permission.v1.ApiClientService`). Authenticating a client is a sign-in:
//! `AuthService.ClientCredentials`, in [`crate::auth`].

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::ApiClients;
