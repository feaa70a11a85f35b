//! Users: local accounts (status, password, profile with time zone and language) and the
//! organisation's settings, the defaults for users who chose none. Serves
//! `crm.permission.v1.UserService`.
//!
//! A user's place in the organisation (departments, manager, roles) is [`crate::org`]'s;
//! their sessions are [`crate::auth`]'s, which disabling a user or changing a password revokes.
//!
//! Layout: [`domain`] (types and their rules, no I/O), [`store`] (the `users` and
//! `org_settings` SQL), [`service`] (the use cases, [`Users`]), [`grpc`] (the edge).

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::Users;
